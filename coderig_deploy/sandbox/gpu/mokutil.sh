#!/bin/sh
# coderig-deploy sandbox: a stand-in for mokutil on a host whose firmware has Secure
# Boot enabled (hardware seam, docs/simulation-seam.md). It answers the calls the
# roles make, worded as mokutil words them (host-outputs.md), and records a staged
# enrollment under /var/lib/coderig-sim/mok instead of EFI variables.
state=/var/lib/coderig-sim/mok
case "$1" in
    --sb-state) echo "SecureBoot enabled" ;;
    --test-key)
        if [ -f "$state/enrolled.der" ] && cmp -s "$2" "$state/enrolled.der"; then
            echo "$2 is already enrolled"
        elif [ -f "$state/new.der" ] && cmp -s "$2" "$state/new.der"; then
            echo "$2 is already in the enrollment request"
        else
            echo "$2 is not enrolled"
        fi ;;
    --import)
        if [ "$3" != "--root-pw" ] || [ ! -f "$2" ]; then
            echo "sandbox mokutil: only --import FILE --root-pw is simulated" >&2
            exit 1
        fi
        mkdir -p "$state" && cp "$2" "$state/new.der" ;;
    *)
        echo "sandbox mokutil: $1 is not simulated" >&2
        exit 1 ;;
esac
