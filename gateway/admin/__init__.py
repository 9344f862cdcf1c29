"""AdminService: policy status and reload, budgets, usage, the audit log."""

from gateway.admin.service import AdminService

__all__ = ["AdminService"]
