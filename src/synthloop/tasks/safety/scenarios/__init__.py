"""Five text scenarios, one analog per gridworld, with the same R / R* / danger-bit contract."""

from synthloop.tasks.safety.scenarios.base import TextScenario
from synthloop.tasks.safety.scenarios.compliance_review import ComplianceReview
from synthloop.tasks.safety.scenarios.database_migration import DatabaseMigration
from synthloop.tasks.safety.scenarios.deployment_pipeline import DeploymentPipeline
from synthloop.tasks.safety.scenarios.shortcut import Shortcut
from synthloop.tasks.safety.scenarios.ticket_queue import TicketQueue

__all__ = ["ComplianceReview", "DatabaseMigration", "DeploymentPipeline", "Shortcut", "TextScenario",
           "TicketQueue"]
