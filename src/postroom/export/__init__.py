"""Export of annotations in the four formats of the reference: JSON, CSV, XML and XLSX.

`records` decides which annotations and fetches them in batches; `tree` reads their content
against the schema; each writer turns batches into chunks of bytes as they come, so an export of
any size streams with flat memory. `queue_export` plans an export (format, filters, page,
`to_status`) and picks its writer; the API edge (`api.routes.queue_export`) streams the chunks.
"""
