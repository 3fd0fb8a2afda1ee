"""Each family's prompt format, for processors saved without a chat template.

A processor's own chat template always wins: it is the format the model was tuned with. These
templates are the fallback for folders that have none (BLIP-2, InstructBLIP and PaliGemma
checkpoints never had one; a converted or hand-built folder may lack it). They read the same
message list as `mcit.models.batches.prompt_text` builds (one user turn of image and text parts)
and end where the answer starts.

Where the template writes an image marker, the processor expands it into the image's tokens
(LLaVA, Qwen2-VL, Idefics3, PaliGemma). BLIP-2 and InstructBLIP place the image tokens themselves
in front of the text, so their templates write none.
"""

from __future__ import annotations


def _turns(user_open: str, image: str, user_close: str, assistant_open: str) -> str:
    """A one-turn template: `user_open`, the parts (`image` for an image), `user_close`, and with a
    generation prompt `assistant_open`."""
    return (
        "{% for message in messages %}{% if message['role'] == 'user' %}" + user_open
        + "{% for part in message['content'] %}"
        + "{% if part['type'] == 'image' %}" + image + "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
        + "{% endfor %}" + user_close + "{% endif %}{% endfor %}"
        + "{% if add_generation_prompt %}" + assistant_open + "{% endif %}"
    )


#: LLaVA-1.5's conversation format (Vicuna style).
LLAVA = _turns("USER: ", "<image>\n", " ", "ASSISTANT:")
#: Qwen's ChatML with the vision markers around the image placeholder.
QWEN = _turns("<|im_start|>user\n", "<|vision_start|><|image_pad|><|vision_end|>", "<|im_end|>\n",
              "<|im_start|>assistant\n")
#: Idefics3 / SmolVLM: "User:" turns closed by the end-of-utterance token.
IDEFICS = _turns("<|im_start|>User:", "<image>", "<end_of_utterance>\n", "Assistant:")
#: BLIP-2's question-answering prompt (the image tokens come from the processor).
BLIP2 = _turns("Question: ", "", " Answer:", "")
#: InstructBLIP takes the instruction as it is.
PLAIN = _turns("", "", "", "")
#: PaliGemma: the image marker first; the processor expands it and adds the start token after the
#: image tokens and the newline that separates prompt from answer.
PALIGEMMA = _turns("", "<image>", "", "")
#: LLaVA-OneVision: ChatML (its Qwen2 language model) with LLaVA's image marker.
ONEVISION = _turns("<|im_start|>user\n", "<image>\n", "<|im_end|>\n", "<|im_start|>assistant\n")
