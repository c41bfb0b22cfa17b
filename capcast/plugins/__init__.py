"""Plugins: the hook specs (:mod:`.hookspecs`), the registry that loads them (:mod:`.registry`) and
the built-in plugins (:mod:`.builtin`), registered through the same hooks as third-party ones."""

from capcast.plugins.hookspecs import hookimpl, hookspec  # noqa: F401
