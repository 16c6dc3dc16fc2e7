"""`coderig-deploy probe`: measure a model on a host before downloading it.

tensors.py and gguf.py write a GGUF with the model's exact tensors and random
weights (stdlib only, they run on the host); host.py is the host side of one probe;
remote.py ships it over SSH; measured.py reads and writes calibration rows.
"""
