"""The request pipeline around every handler, outermost first: observe, errors, limits, auth."""
