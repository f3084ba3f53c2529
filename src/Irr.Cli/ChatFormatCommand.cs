using System.CommandLine;
using Irr.Text;

namespace Irr.Cli;

/// <summary><c>irr chat-format</c>: render a conversation with the model's chat template, as transformers' apply_chat_template (<see cref="ChatFormatJob"/>).</summary>
internal static class ChatFormatCommand
{
    internal static Command Create()
    {
        var command = new JobCommand(typeof(ChatFormatJob));
        command.SetAction(parseResult =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var result = command.Build<ChatFormatJob>(parseResult).Run();
            if (result.Ids is { } ids) output.WriteLine("[" + string.Join(", ", ids) + "]");
            else output.Write(result.Prompt);
            return 0;
        });
        return command;
    }
}
