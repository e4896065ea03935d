"""The Check-in tab's parts (Qt). The tab itself is :mod:`desktop.ui.checkin_tab`.

* :mod:`.live` binds the core to Qt: the camera, the face engine (loaded lazily), the
  gallery and the :class:`~desktop.face.pipeline.CheckinPipeline` running in a
  :class:`~desktop.ui.qthreading.Worker`;
* :mod:`.video_view`, :mod:`.overlay`, :mod:`.banners`, :mod:`.side_panel`: what the
  receptionist sees;
* :mod:`.pin`, :mod:`.manager` and its pages (:mod:`.people_page`, :mod:`.enrol_page`,
  :mod:`.log_page`, :mod:`.settings_page`, :mod:`.model`), :mod:`.enrol_dialog`:
  what the manager uses;
* :mod:`.startup`: a damaged gallery (restore a backup) and re-embedding stale templates.
"""
