"""The Qt layer: windows, tabs, dialogs and worker threads. Drives the core off the UI
thread; the core never imports from here."""
