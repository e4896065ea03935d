"""The Style tab's own style sheet (scoped to ``#styleTab``), on top of the app's."""

STYLE_SHEET = """
#styleTab QGroupBox { font-weight: 600; margin-top: 14px; padding-top: 4px;
    border: 1px solid #dadce0; border-radius: 6px; }
#styleTab QGroupBox::title { subcontrol-origin: margin; left: 8px; padding: 0 4px;
    color: #3c4043; }
#styleTab QGroupBox QLabel, #styleTab QGroupBox QCheckBox { font-weight: normal; }
#styleTab QFrame[slot="true"] { border: 1px solid #dadce0; border-radius: 6px;
    background: #f8f9fa; }
#styleTab QFrame[slot="true"][missing="true"] { border: 2px solid #d93025;
    background: #fce8e6; }
#styleTab QFrame[slot="true"] QLabel { background: transparent; border: none; }
#styleTab QLabel#thumb { border: 1px dashed #9aa0a6; border-radius: 4px; color: #80868b;
    background: white; font-size: 10px; }
#styleTab QLabel#slotName { color: #5f6368; }
#styleTab QPushButton#startButton { background: #1a73e8; color: white; font-weight: 600;
    border: 1px solid #1967d2; border-radius: 4px; padding: 5px 16px; }
#styleTab QPushButton#startButton:hover { background: #1967d2; }
#styleTab QPushButton#startButton:disabled { background: #aecbfa; border-color: #aecbfa; }
#styleTab QPushButton#pauseButton[paused="true"] { font-weight: 600; color: #1967d2; }
#styleTab QToolButton[segment="true"] { padding: 4px 10px; border: 1px solid #c4c7c5;
    background: white; }
#styleTab QToolButton[segment="true"]:checked { background: #d3e3fd; border-color: #1a73e8;
    color: #041e49; font-weight: 600; }
#styleTab #styleMessage { border-radius: 4px; }
#styleTab #styleMessage[level="error"] { background: #fce8e6; border: 1px solid #f28b82; }
#styleTab #styleMessage[level="error"] QLabel { color: #a50e0e; }
#styleTab #styleMessage[level="warning"] { background: #fef7e0; border: 1px solid #fdd663; }
#styleTab #styleMessage[level="warning"] QLabel { color: #6b4a00; }
#styleTab #styleMessage[level="info"] { background: #e8f0fe; border: 1px solid #aecbfa; }
#styleTab #styleMessage[level="info"] QLabel { color: #174ea6; }
#styleTab QProgressBar#styleProgress { border: none; background: #e8eaed; border-radius: 3px; }
#styleTab QProgressBar#styleProgress::chunk { background: #1a73e8; border-radius: 3px; }
#styleTab QLabel#styleStats { color: #3c4043; }
#styleTab QLabel#styleDevice { color: #5f6368; }
#styleTab QListWidget#historyStrip { border: 1px solid #dadce0; border-radius: 6px;
    background: #f8f9fa; }
#styleTab QTableWidget#layerTable { border: 1px solid #dadce0; }
"""
