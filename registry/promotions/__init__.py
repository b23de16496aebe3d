"""Promotion requests, evaluation gates and four-eyes approvals."""
