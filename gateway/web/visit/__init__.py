"""The visitor's page (docs/visitors.md): served by the gateway as it is, no build step."""
