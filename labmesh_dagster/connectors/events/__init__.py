"""The store-event queue port and its SQS implementation."""
