"""How frameworks get autologged: the safe patching engine, plugin discovery, options, and the run lifecycle that decides which run a fit uses and how it ends."""
