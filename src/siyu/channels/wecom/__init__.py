"""WeCom (企业微信) channel: callback crypto, the customer-contact API client, a local fake
WeCom server, the callback inbox and its worker, and staff-mediated send tracking."""
