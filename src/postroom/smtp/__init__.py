"""SMTP inbox listener: aiosmtpd on the service loop; mail to an inbox becomes documents via intake."""
