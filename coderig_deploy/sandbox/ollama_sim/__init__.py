"""A stdlib-only simulator of the Ollama server and CLI for sandbox hosts.

Shipped as an Ollama release archive (coderig_deploy/sandbox/release.py); it must
run with the target host's plain python3 (Debian 12: 3.11) and nothing else.
"""

VERSION = "0.33.3"
