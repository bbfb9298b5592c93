"""What setup.cfg cannot say: the page's top-level static/ and templates/ go into the wheel.

They stay where they are in the repository (`python chat_server.py` serves them from there) and
are mapped into the `handlers` package at build time, as `handlers/static` and
`handlers/templates` (handlers/pages.py `page_folder` finds either). Everything else is in
setup.cfg.
"""

from setuptools import find_packages, setup

# The mapping needs the two names in `packages`, which setup.cfg's `find:` cannot add to.
PAGE = {"handlers.static": "static", "handlers.templates": "templates"}

setup(
    packages=[*find_packages(include=["chat", "chat.*", "handlers", "handlers.*"]), *PAGE],
    package_dir=PAGE,
)
