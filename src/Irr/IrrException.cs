namespace Irr;

/// <summary>
/// A problem with the user's input: a file, a tensor, a line of a data set, an option value.
/// The message is one line that names the file (and the tensor, key or line) and says what is
/// wrong, e.g. <c>model.safetensors: tensor 'lm_head.weight': unsupported dtype I8</c>.
/// The command line prints it as <c>error: message</c> and exits with code 2; it is never shown
/// as a stack trace. Library code throws it only for input problems, not for its own bugs.
/// </summary>
public class IrrException : Exception
{
    /// <summary>An input problem described by a one-line message.</summary>
    public IrrException(string message) : base(message) { }

    /// <summary>An input problem caused by a lower-level exception (kept for debugging).</summary>
    public IrrException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>
/// Generations by a serving engine failed (the server answered 5xx, timed out, sent garbage), so the work cannot be
/// completed now, although nothing in the input is wrong: the command line exits with code 3, as the generating
/// commands do when some of their generations failed, and a rerun asks for those again.
/// </summary>
public sealed class GenerationsFailedException(string message) : IrrException(message);
