"""autoreg's built-in technique plugins, one module per technique, found through entry points."""
