"""The application layer: the `speechcmd` command line and the Qt window (Qt is imported only by the GUI)."""
