"""The console's frame for pages served outside ``admin`` (the bot's WeCom pages, the simulators).

``_console_shell.html`` here gives them the console's CSS, scripts and menu (loaded from ``/console/nav``
with htmx), so a package that may not import ``admin`` still shows the console's navigation. Add
:data:`TEMPLATE_DIR` to a Jinja loader's search path and ``{% include "_console_shell.html" %}``.
"""

from pathlib import Path

TEMPLATE_DIR = Path(__file__).parent
