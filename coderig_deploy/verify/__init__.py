"""`verify`: testinfra checks of a provisioned host's state against its profile."""
