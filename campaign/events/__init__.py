"""Delivery events: parse (SNS envelope, raw, EventBridge, Firehose -> DeliveryEvent) and ingest."""
