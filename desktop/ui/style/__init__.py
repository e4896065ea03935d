"""The Style tab's widgets, one small module each; ``desktop.ui.style_tab`` puts them
together."""
