using Irr.Text;

namespace Irr.Tests.Text;

/// <summary>
/// Each real template (tests/fixtures/templates) on a system + user + assistant conversation, with the
/// expected text worked out by hand from the template source (trim_blocks, lstrip_blocks, no generation prompt).
/// </summary>
public class HandDerivedTemplateTests
{
    private static readonly ChatMessage[] Conversation =
        [new("system", "You are terse."), new("user", "Hi"), new("assistant", "Hello!")];

    private static string Render(string file, string? bos, string? eos, ChatMessage[]? messages = null, bool generationPrompt = false) =>
        ChatTemplate.Parse(File.ReadAllText(Fixtures.Local($"templates/{file}.jinja")))
            .Render(messages ?? Conversation, generationPrompt, new Dictionary<string, string?> { ["bos_token"] = bos, ["eos_token"] = eos });

    [Fact]
    public void TinyLlamaZephyr() => Assert.Equal(
        // Each {{ }} line keeps its newline; every {% %} line is removed whole by trim/lstrip_blocks.
        "<|system|>\nYou are terse.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello!</s>\n",
        Render("TinyLlama-1.1B-Chat-v1.0", "<s>", "</s>"));

    [Fact]
    public void TinyLlamaZephyrGenerationPrompt() => Assert.Equal(
        "<|user|>\nHi</s>\n<|assistant|>\n",
        Render("TinyLlama-1.1B-Chat-v1.0", "<s>", "</s>", [new("user", "Hi")], generationPrompt: true));

    [Fact]
    public void Llama2Chat() => Assert.Equal(
        // The system message goes inside the first [INST] between <<SYS>> markers; the answer is " " + strip + " " + eos.
        "<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi [/INST] Hello! </s>",
        Render("meta-llama-Llama-2-7b-chat-hf", "<s>", "</s>"));

    [Fact]
    public void Llama3Instruct() => Assert.Equal(
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>" +
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>" +
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>",
        Render("meta-llama-Meta-Llama-3-8B-Instruct", "<|begin_of_text|>", "<|eot_id|>"));

    [Fact]
    public void Llama3InstructOriginalAlwaysOpensTheAssistantTurn() => Assert.Equal(
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>" +
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>" +
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>" +
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
        Render("meta-llama-Meta-Llama-3-8B-Instruct.2024-04-original", "<|begin_of_text|>", "<|end_of_text|>"));

    [Fact]
    public void Llama31Instruct() => Assert.Equal(
        // The system block always carries the knowledge cut-off and the fallback date "26 Jul 2024".
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n" +
        "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nYou are terse.<|eot_id|>" +
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>" +
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>",
        Render("meta-llama-Llama-3.1-8B-Instruct", "<|begin_of_text|>", "<|eot_id|>"));

    [Theory]
    [InlineData("mistralai-Mistral-7B-Instruct-v0.1")]
    [InlineData("mistralai-Mistral-7B-Instruct-v0.2")]
    public void MistralV01AndV02RejectASystemMessage(string file)
    {
        // Message 0 is not 'user', so the alternation check (which runs first) raises.
        var e = Assert.Throws<TemplateRaisedException>(() => Render(file, "<s>", "</s>"));
        Assert.Equal("Conversation roles must alternate user/assistant/user/assistant/...", e.RaisedMessage);
    }

    [Fact]
    public void MistralV01WithoutSystem() => Assert.Equal(
        "<s>[INST] Hi [/INST]Hello!</s> ", Render("mistralai-Mistral-7B-Instruct-v0.1", "<s>", "</s>", Conversation[1..]));

    [Fact]
    public void MistralV02WithoutSystem() => Assert.Equal(
        "<s>[INST] Hi [/INST]Hello!</s>", Render("mistralai-Mistral-7B-Instruct-v0.2", "<s>", "</s>", Conversation[1..]));

    [Fact]
    public void MistralV03PutsTheSystemMessageOnlyIntoTheLastUserTurn()
    {
        // Here the only user turn is not the last message, so the system message is not shown at all.
        Assert.Equal("<s>[INST] Hi[/INST] Hello!</s>", Render("mistralai-Mistral-7B-Instruct-v0.3", "<s>", "</s>"));
        Assert.Equal("<s>[INST] You are terse.\n\nHi[/INST]", Render("mistralai-Mistral-7B-Instruct-v0.3", "<s>", "</s>", Conversation[..2]));
    }

    [Fact]
    public void Qwen25Instruct() => Assert.Equal(
        "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n",
        Render("Qwen-Qwen2.5-7B-Instruct", null, "<|im_end|>"));

    [Fact]
    public void Qwen25DefaultSystemPrompt() => Assert.Equal(
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
        Render("Qwen-Qwen2.5-7B-Instruct", null, "<|im_end|>", [new("user", "Hi")], generationPrompt: true));

    [Fact]
    public void Qwen3() => Assert.Equal(
        // The last assistant turn after the last user query gets an (empty) <think> block.
        "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n" +
        "<|im_start|>assistant\n<think>\n\n</think>\n\nHello!<|im_end|>\n",
        Render("Qwen-Qwen3-0.6B", null, "<|im_end|>"));
}
