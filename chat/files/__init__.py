"""Files and images shared in the chat (issue 18): uploads, their storage, who may read them."""
