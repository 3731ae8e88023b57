"""Chat commands (聊天指令): a salesperson writes to the app in WeCom and works without a browser.

:mod:`bot.commands.dispatch` registers the inbox handler for text messages; :mod:`.parser` reads
the command; one module per command runs it as the sender's data-scoped Viewer; :mod:`.replies`
answers with an app message after the unit of work commits.
"""
