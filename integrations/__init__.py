"""Built-in integrations, installed as ``autolog.integrations``; one module per framework.

Importing a module here never imports its framework: the patch function receives the
framework module from a post-import hook.
"""
