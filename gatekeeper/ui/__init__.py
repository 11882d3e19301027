"""Pages for people: every recent verdict with both sides charted (``/ui/``).

:mod:`~gatekeeper.ui.store` keeps the verdicts, :mod:`~gatekeeper.ui.charts` draws inline
SVG, :mod:`~gatekeeper.ui.views` decides what each metric's charts show,
:mod:`~gatekeeper.ui.pages` writes the HTML and :mod:`~gatekeeper.ui.routes` serves it.
"""
