"""Subcommands of ``poolhead`` beside Lightning's fit/validate/test: each module has add_arguments() and run()."""
