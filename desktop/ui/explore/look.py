"""The Explore tab's own style sheet (scoped to ``#exploreTab``), on top of the app's."""

STYLE_SHEET = """
#exploreTab QGroupBox { font-weight: 600; margin-top: 14px; padding-top: 4px;
    border: 1px solid #dadce0; border-radius: 6px; }
#exploreTab QGroupBox::title { subcontrol-origin: margin; left: 8px; padding: 0 4px;
    color: #3c4043; }
#exploreTab QGroupBox QLabel, #exploreTab QGroupBox QCheckBox,
#exploreTab QGroupBox QRadioButton { font-weight: normal; }
#exploreTab QPushButton[primary="true"] { background: #1a73e8; color: white;
    font-weight: 600; border: 1px solid #1967d2; border-radius: 4px; padding: 5px 16px; }
#exploreTab QPushButton[primary="true"]:hover { background: #1967d2; }
#exploreTab QPushButton[primary="true"]:disabled { background: #aecbfa;
    border-color: #aecbfa; }
#exploreTab QLabel[role="fact"] { color: #5f6368; }
#exploreTab QLabel[role="big"] { font-size: 15px; font-weight: 600; color: #202124; }
#exploreTab QLabel[role="ok"] { color: #137333; font-weight: 600; }
#exploreTab QLabel[role="bad"] { color: #a50e0e; font-weight: 600; }
#exploreTab QFrame#unitCard { background: white; border: 1px solid #dadce0;
    border-radius: 6px; }
#exploreTab QFrame#unitCard:hover { border-color: #1a73e8; background: #f8fbff; }
#exploreTab QFrame#layerColumn { background: #f8f9fa; border: 1px solid #dadce0;
    border-radius: 6px; }
#exploreTab QProgressBar { border: none; background: #e8eaed; border-radius: 3px;
    max-height: 6px; }
#exploreTab QProgressBar::chunk { background: #1a73e8; border-radius: 3px; }
#exploreTab #styleMessage { border-radius: 4px; }
#exploreTab #styleMessage[level="error"] { background: #fce8e6; border: 1px solid #f28b82; }
#exploreTab #styleMessage[level="error"] QLabel { color: #a50e0e; }
#exploreTab #styleMessage[level="warning"] { background: #fef7e0; border: 1px solid #fdd663; }
#exploreTab #styleMessage[level="warning"] QLabel { color: #6b4a00; }
#exploreTab #styleMessage[level="info"] { background: #e8f0fe; border: 1px solid #aecbfa; }
#exploreTab #styleMessage[level="info"] QLabel { color: #174ea6; }
"""
