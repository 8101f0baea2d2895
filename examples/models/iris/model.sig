{
  "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
  "verificationMaterial": {
    "publicKey": {
      "hint": "931a07fd3c4bff7ef1541c515781b3c73df5a5201fe9c20d794e2ed8cf8486fe"
    },
    "tlogEntries": []
  },
  "dsseEnvelope": {
    "payload": "ewogICJfdHlwZSI6ICJodHRwczovL2luLXRvdG8uaW8vU3RhdGVtZW50L3YxIiwKICAicHJlZGljYXRlIjogewogICAgInJlc291cmNlcyI6IFsKICAgICAgewogICAgICAgICJhbGdvcml0aG0iOiAic2hhMjU2IiwKICAgICAgICAiZGlnZXN0IjogImE3NWFhMjZkMjEzZWY4ODQ2YjU3ZjNjNDViY2U4ZjYxN2QyM2U4MDI2NDVhZTMwOGUzODY2MDliMWE2OGFlOGQiLAogICAgICAgICJuYW1lIjogIm1vZGVsLm9ubngiCiAgICAgIH0KICAgIF0sCiAgICAic2VyaWFsaXphdGlvbiI6IHsKICAgICAgImFsbG93X3N5bWxpbmtzIjogZmFsc2UsCiAgICAgICJoYXNoX3R5cGUiOiAic2hhMjU2IiwKICAgICAgImlnbm9yZV9wYXRocyI6IFsKICAgICAgICAiLmdpdCIsCiAgICAgICAgIi5naXRhdHRyaWJ1dGVzIiwKICAgICAgICAiLmdpdGh1YiIsCiAgICAgICAgIi5naXRpZ25vcmUiCiAgICAgIF0sCiAgICAgICJtZXRob2QiOiAiZmlsZXMiCiAgICB9CiAgfSwKICAicHJlZGljYXRlVHlwZSI6ICJodHRwczovL21vZGVsX3NpZ25pbmcvc2lnbmF0dXJlL3YxLjAiLAogICJzdWJqZWN0IjogWwogICAgewogICAgICAiZGlnZXN0IjogewogICAgICAgICJzaGEyNTYiOiAiZDJiYzc5ZjUyZDlkMWVmNzg4ZmZjN2JhNjI1NDk4NmMxY2Y0MTMyZTBiNGZmM2UzZDY5OWQxNzU5MzI1ODBkNiIKICAgICAgfSwKICAgICAgIm5hbWUiOiAiaXJpcyIKICAgIH0KICBdCn0=",
    "payloadType": "application/vnd.in-toto+json",
    "signatures": [
      {
        "sig": "MEUCIEjABim7YjRESuKG6NxACDeHqXWqhU0o7XkLEB1y6StaAiEAjCP0BXfpAgW/U6pSyZh4dLb0PXu3XpR6wwnV2VMSQYQ=",
        "keyid": ""
      }
    ]
  }
}