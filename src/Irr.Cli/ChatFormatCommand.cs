using System.CommandLine;
using Irr.Text;

namespace Irr.Cli;

/// <summary><c>irr chat-format</c>: render a conversation with the model's chat template, as transformers' apply_chat_template.</summary>
internal static class ChatFormatCommand
{
    internal static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Hugging Face model directory with tokenizer.json and tokenizer_config.json", Required = true };
        var user = new Option<string>("--user") { Description = "the user message", Required = true };
        var system = new Option<string>("--system") { Description = "system prompt: none, llama2 (the Llama-2 default system prompt) or the text itself", DefaultValueFactory = _ => "none" };
        var assistant = new Option<string?>("--assistant") { Description = "an assistant reply after the user message (then no generation prompt is added)" };
        var noGeneration = new Option<bool>("--no-generation-prompt") { Description = "do not end with the header that opens the assistant's turn" };
        var template = new Option<string?>("--template") { Description = "which chat template to use when the model has several (by name: additional_chat_templates/NAME.jinja or a named chat_template in tokenizer_config.json)" };
        var ids = new Option<bool>("--ids") { Description = "print the token ids of the rendered prompt (a JSON array) instead of the text" };
        var adapter = new Option<string?>("--adapter") { Description = "a PEFT adapter directory: its tokenizer and chat template are used when it holds a tokenizer.json, as vLLM does" };
        var command = new Command("chat-format",
            "Print the prompt the model's chat template makes of a conversation (add_generation_prompt=True by default). " +
            "The text is printed exactly, without a newline added.")
        {
            model, adapter, user, system, assistant, noGeneration, template, ids,
        };
        command.SetAction(parseResult =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var tokenizer = PretrainedTokenizer.Load(parseResult.GetValue(model)!, parseResult.GetValue(adapter));
            var messages = new List<ChatMessage>();
            if (SystemPrompt.Resolve(parseResult.GetValue(system)) is { } sys) messages.Add(new ChatMessage("system", sys));
            messages.Add(new ChatMessage("user", parseResult.GetValue(user)!));
            var reply = parseResult.GetValue(assistant);
            if (reply is not null) messages.Add(new ChatMessage("assistant", reply));
            bool generationPrompt = reply is null && !parseResult.GetValue(noGeneration);
            string prompt = tokenizer.ApplyChatTemplate(messages, generationPrompt, parseResult.GetValue(template));
            if (parseResult.GetValue(ids))
                output.WriteLine("[" + string.Join(", ", tokenizer.Encode(prompt)) + "]");
            else output.Write(prompt);
            return 0;
        });
        return command;
    }
}
