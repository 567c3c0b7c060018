"""Tasks of docs/examples/storages.yml (docs/storages.md)."""

from selflow import SelflowTask


class CountWords(SelflowTask):
    def run(self, node_args):
        text = node_args["text"]
        return {"words": len(text.split()), "text": text}


class Summarise(SelflowTask):
    def run(self, node_args):
        counted = self.parent_task_result("CountWords")  # from selflow's state store
        return {"summary": " ".join(counted["text"].split()[:3]), "words": counted["words"]}


class Audit(SelflowTask):
    def run(self, node_args):
        # the adapter of the task's storage: here the record CountWords wrote to the Archive
        stored = self.storage.retrieve(self.flow_name, "CountWords", self.parent["CountWords"])
        return {"stored_words": stored["words"]}
