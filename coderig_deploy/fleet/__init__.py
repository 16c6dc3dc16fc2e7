"""Fleet runs: what each host has, which profile each gets, retrying the hosts that failed."""
