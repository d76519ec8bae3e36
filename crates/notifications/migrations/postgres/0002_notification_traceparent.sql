-- The W3C traceparent of the event that asked for the notification: the
-- send joins its trace.
ALTER TABLE notifications ADD COLUMN traceparent TEXT;
