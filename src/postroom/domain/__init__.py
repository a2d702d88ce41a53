"""The application's rules, one module per resource: every rule and every SQL statement about it.

Domain functions take the `Runtime` (or a connection), the acting `Actor` and plain values; they
return plain data (rows, `TypedDict`s) and raise `postroom.errors`. They know nothing of HTTP or
SMTP: the edges (`postroom.api`, `postroom.smtp`, `postroom.cli`) parse, call one function, render.
"""
