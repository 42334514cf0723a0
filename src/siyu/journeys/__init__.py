"""Journeys and SOPs: definitions, enrollments, durable timers and the step engine."""
