"""Text from hosts and files made safe to print on a terminal."""

from __future__ import annotations

# Characters that drive a terminal instead of printing: C0 controls but tab and newline (ESC starts the sequences
# that move the cursor, clear the screen or retitle the window; CR overwrites a line), DEL, the C1 controls (0x9b
# is a one-byte CSI), the bidirectional marks, overrides and isolates, which reorder what a bidi-capable terminal
# shows, and the two noncharacters no XML file may hold.
_UNSAFE = [*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F, *range(0x80, 0xA0), 0x061C, 0x200E, 0x200F,
           *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0xFFFE, 0xFFFF]
_ESCAPES = {c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" for c in _UNSAFE}


def safe(value: str) -> str:
    """`value` with every character that would drive the terminal shown as its escape (ESC as `\\x1b`): text from
    hosts and files (a host's Ollama version, a calibration row's source) is printed, never obeyed. rich, which
    prints it, strips only BEL, BS, VT, FF and CR."""
    return value.replace("\r\n", "\n").translate(_ESCAPES)  # a Windows or pty line end is a line end
