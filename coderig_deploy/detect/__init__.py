"""What each host has (GPUs, RAM, disk, OS, driver, Ollama) and which profiles fit it.

`parse` holds pure parsers of what hosts print, `probe` reads a host over SSH,
`facts` combines the pieces into a HostFacts, `choose` ranks the profiles that fit
and `assign` gives every host of a run its profile (command line, inventory or auto).
"""
