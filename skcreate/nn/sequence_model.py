"""The training step of a sequence encoder: its local item loss on a batch of sequences."""

from torch import nn

from .item_table import ItemTable

__all__ = ["SequenceModel"]


class SequenceModel(nn.Module):
    """A sequence encoder and its local loss: SASRec's next-item or BERT4Rec's masked-item step.

    Parameters
    ----------
    encoder : skcreate.nn.SASRecEncoder
        Causal (next-item) or bidirectional (masked-item) transformer.
    local_loss : callable
        ``local_loss(hidden, targets, item_table) -> scalar`` over the positions that carry a
        target (``item_table`` is the encoder's :class:`~skcreate.nn.ItemTable`), e.g.
        :class:`~skcreate.nn.FullCrossEntropy`.
    mask_token : int, optional
        Table row of the [MASK] token appended at inference (BERT4Rec); None for SASRec.

    Notes
    -----
    A batch holds left-padded item-table rows of shape (B, L) as attributes: ``inputs`` (what
    the encoder reads) and ``targets`` (the row to predict at each position, padding where
    there is nothing to predict), plus ``users`` (B,), the batch's user codes (a
    :class:`~skcreate.training.batches.SequenceBatch`).
    """

    def __init__(self, encoder, local_loss, mask_token=None):
        super().__init__()
        self.encoder = encoder
        self.local_loss = local_loss
        self.mask_token = mask_token

    @property
    def item_table(self):
        return self.encoder.item_table

    def local_and_hidden(self, batch):
        """Local loss of a batch and the encoder's states at every position, (B, L, d)."""
        hidden = self.encoder(batch.inputs)
        targets = batch.targets
        real = targets != ItemTable.padding
        loss = self.local_loss(hidden[real], ItemTable.codes(targets[real]),
                               self.encoder.item_table)
        return loss, hidden

    def forward(self, batch):
        """Named loss terms of one step: ``{"local": loss}``."""
        return {"local": self.local_and_hidden(batch)[0]}
