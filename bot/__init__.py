"""WeCom channel: gateway client, callback endpoint, event handlers, chat commands, notifications,
transfers, and the local WeCom simulator."""
