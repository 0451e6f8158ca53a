"""What every path that stores source data (``kpibot sync``, the webhooks) agrees on."""
