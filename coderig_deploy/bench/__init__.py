"""The smoke benchmark.

Everything in this package except `pyz` runs ON THE HOST with the host's own
python3 (3.11, standard library only): `pyz.build_pyz()` zips these modules into
one file that the smoke role copies and runs (`python3 coderig-bench.pyz ...`),
printing one JSON document. The controller imports the same modules to run the
benchmark against a URL (`coderig-deploy bench`) and to judge results
(`verdict`, `vramcheck`). Keep this package free of third-party imports.
"""
