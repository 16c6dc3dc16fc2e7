"""`validate --airgapped`: prove on each host that it has no way out and serves the bundle's model.

    probe = run_probe(host, api_url)          # on the host, over SSH: routes, a local connect attempt, Ollama
    checks = airgap_checks(probe, expected)   # pure: one CheckResult per promise
"""
