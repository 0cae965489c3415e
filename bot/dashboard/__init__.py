"""The staff dashboard under /staff/: requests, case files, the live handoff inbox, reports."""

from bot.dashboard.app import Dashboard

__all__ = ["Dashboard"]
