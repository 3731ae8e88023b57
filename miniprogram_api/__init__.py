"""The WeChat mini-program's HTTP API, served under /mp/."""
