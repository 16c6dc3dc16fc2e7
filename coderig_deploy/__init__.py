"""coderig-deploy: provision GPU workstations for local coding LLMs and prove they work."""

__version__ = "0.1.0"
