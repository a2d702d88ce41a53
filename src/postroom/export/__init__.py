"""Export of annotations in the four formats of the reference: JSON, CSV, XML and XLSX.

`records` decides which annotations and fetches them in batches; `tree` reads their content
against the schema; each writer turns batches into chunks of bytes as they come, so an export of
any size streams with flat memory. `web.export` negotiates the format and sends the chunks.
"""
