using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Text;

namespace Irr.Text.Jinja;

/// <summary>
/// The resource budget of one parse or rendering of a chat template, an untrusted program (issue 24; docs/formats.md,
/// "Chat templates"): a nesting depth counted explicitly (parser recursion, expression and block evaluation, macro
/// calls, nested data walked by <c>tojson</c>, <c>==</c>, printing), a step budget (expressions, statements, loop
/// iterations, items and text processed), and a size limit on every string and list a template makes and on the
/// rendered prompt, checked before the memory is allocated. Parsing and rendering run on a thread of their own with a
/// large stack (<see cref="Run{T}"/>), so that the depth limit is reached long before the stack is.
/// </summary>
internal sealed class Budget
{
    /// <summary>Nesting: parentheses, blocks, expressions, macro calls, data (jinja2 raises RecursionError at Python's ~1000 frames).</summary>
    public const string DepthVariable = "IRR_MAX_TEMPLATE_DEPTH";

    /// <summary>Work: expressions, statements, loop iterations, items processed, characters and list items made.</summary>
    public const string StepsVariable = "IRR_MAX_TEMPLATE_STEPS";

    /// <summary>Characters of the rendered prompt and of any one string a template makes.</summary>
    public const string OutputVariable = "IRR_MAX_TEMPLATE_OUTPUT";

    /// <summary>Items of any one list a template makes (<c>range()</c>, <c>*</c>, <c>+</c>, <c>|list</c> …).</summary>
    public const string ItemsVariable = "IRR_MAX_TEMPLATE_ITEMS";

    public const long DefaultDepth = 1000;
    public const long DefaultSteps = 50_000_000;
    public const long DefaultOutput = 64L << 20;
    public const long DefaultItems = 1_000_000;

    /// <summary>
    /// Characters of text made that cost one step; an item of a list made costs <see cref="StepsPerItem"/>. Either way a
    /// step pays for about 8 bytes, so with the default step budget what one rendering allocates in all stays near 400 MB
    /// (200 M characters, or 12.5 M list items with their boxed integers), whatever the template keeps alive.
    /// </summary>
    public const int CharsPerStep = 4;

    /// <summary>The steps one item of a list made costs (see <see cref="CharsPerStep"/>).</summary>
    public const int StepsPerItem = 4;

    /// <summary>The stack of the thread templates run on: 64 MiB (committed only as used), many times what the default depth needs.</summary>
    private const int StackBytes = 64 << 20;

    [ThreadStatic] private static Budget? current;

    private readonly long maxDepth = Limits.Get(DepthVariable, DefaultDepth);
    private readonly long maxSteps = Limits.Get(StepsVariable, DefaultSteps);
    private long depth, steps, nextInterruptionCheck = 1_000_000;

    /// <summary>The longest string (and rendered prompt), in characters.</summary>
    public long MaxChars { get; } = Limits.Get(OutputVariable, DefaultOutput);

    /// <summary>The longest list, in items.</summary>
    public long MaxItems { get; } = Limits.Get(ItemsVariable, DefaultItems);

    /// <summary>The steps taken so far (for measuring what real templates need).</summary>
    public long Steps => steps;

    /// <summary>The budget of the parse or rendering running on this thread (a fresh one outside <see cref="Run{T}"/>, e.g. in a unit of the library).</summary>
    public static Budget Current => current ??= new Budget();

    /// <summary>
    /// Runs <paramref name="work"/> with a fresh budget on a thread with a large stack, and returns its result or
    /// rethrows its exception as is. <paramref name="spent"/> receives the steps taken.
    /// </summary>
    public static T Run<T>(Func<T> work, out long spent)
    {
        T result = default!;
        ExceptionDispatchInfo? error = null;
        long taken = 0;
        var thread = new Thread(() =>
        {
            current = new Budget();
            try
            {
                result = work();
            }
            catch (Exception e)
            {
                error = ExceptionDispatchInfo.Capture(e);
            }
            finally
            {
                taken = current.steps;
                current = null;
            }
        }, StackBytes) { Name = "chat template", IsBackground = true };
        thread.Start();
        thread.Join();
        error?.Throw();
        spent = taken;
        return result;
    }

    /// <summary>One level deeper; <see cref="Leave"/> undoes it (in a finally).</summary>
    /// <exception cref="LimitError">Deeper than the limit (or, as a last resort, the stack is nearly full).</exception>
    public void Enter()
    {
        if (++depth > maxDepth || !RuntimeHelpers.TryEnsureSufficientExecutionStack())
        {
            depth--;
            throw new LimitError("nesting depth (parentheses, blocks, expressions, macro calls or nested data)", DepthVariable, maxDepth);
        }
    }

    public void Leave() => depth--;

    /// <summary>Spends <paramref name="n"/> steps.</summary>
    /// <exception cref="LimitError">The step budget is spent (a runaway loop).</exception>
    public void Step(long n = 1)
    {
        steps += n;
        if (steps >= nextInterruptionCheck)
        {
            // Ctrl-C or SIGTERM during a long rendering: the stop request is honoured every million steps (well under a second).
            nextInterruptionCheck = steps + 1_000_000;
            Interruption.ThrowIfRequested();
        }
        if (steps > maxSteps)
            throw new LimitError("the work of rendering (steps: expressions, statements, loop iterations, items and text processed)", StepsVariable, maxSteps);
    }

    /// <summary>Spends the steps of producing <paramref name="chars"/> characters, after checking that a string that long is allowed.</summary>
    /// <exception cref="LimitError">The string would be longer than the limit, or the step budget is spent.</exception>
    public void Text(long chars, string what = "a string")
    {
        CheckChars(chars, what);
        Step(1 + chars / CharsPerStep);
    }

    /// <summary>Checks that a string of <paramref name="chars"/> characters is allowed (no steps spent: the caller spends them for what it adds).</summary>
    /// <exception cref="LimitError">The string would be longer than the limit.</exception>
    public void CheckChars(long chars, string what = "a string")
    {
        if (chars > MaxChars) throw new LimitError($"{what} of {N(chars)} characters", OutputVariable, MaxChars);
    }

    /// <summary>Spends the steps of producing a list of <paramref name="items"/> items, after checking that a list that long is allowed.</summary>
    /// <exception cref="LimitError">The list would be longer than the limit, or the step budget is spent.</exception>
    public void Items(long items, string what = "a list")
    {
        if (items > MaxItems) throw new LimitError($"{what} of {N(items)} items", ItemsVariable, MaxItems);
        Step(1 + items * StepsPerItem);
    }

    /// <summary>A count as limit messages print it: 1,000,000.</summary>
    public static string N(long n) => n.ToString("N0", CultureInfo.InvariantCulture);

    /// <summary>
    /// Spends the steps of a value a filter, method or function returned (a string by its length, a list by its items),
    /// after checking it is within the limits: what it allocated counts, whichever builtin made it.
    /// </summary>
    /// <exception cref="LimitError">The value is larger than the limit, or the step budget is spent.</exception>
    public object? Made(object? value)
    {
        switch (value)
        {
            case string s: Text(s.Length); break;
            case List<object?> l: Items(l.Count); break;
            case PyTuple t: Items(t.Items.Length, "a tuple"); break;
        }
        return value;
    }

    /// <summary><paramref name="a"/> + <paramref name="b"/> of non-negative sizes, saturating at long.MaxValue.</summary>
    public static long Sum(long a, long b) => a > long.MaxValue - b ? long.MaxValue : a + b;

    /// <summary><paramref name="length"/> × <paramref name="count"/>, saturating at long.MaxValue instead of overflowing (for size checks).</summary>
    public static long Times(long length, long count) =>
        length <= 0 || count <= 0 ? 0 : length > long.MaxValue / count ? long.MaxValue : length * count;

    /// <summary>
    /// Text from a template or its data as it goes into an error message: control characters (newline, ESC, BEL, NUL,
    /// C1, U+2028/U+2029) escaped as <c>\n</c>, <c>\x1b</c>, <c>\u2028</c> …, so that the message stays one line.
    /// </summary>
    public static string Escape(string s)
    {
        int i = 0;
        while (i < s.Length && !NeedsEscape(s[i])) i++;
        if (i == s.Length) return s;
        var b = new StringBuilder(s.Length + 16).Append(s, 0, i);
        for (; i < s.Length; i++)
        {
            char c = s[i];
            if (!NeedsEscape(c)) b.Append(c);
            else b.Append(c switch
            {
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ => c <= 0xFF ? $"\\x{(int)c:x2}" : $"\\u{(int)c:x4}",
            });
        }
        return b.ToString();
    }

    private static bool NeedsEscape(char c) => char.IsControl(c) || c is '\u2028' or '\u2029';
}

/// <summary>A template exceeded one of its limits; the template adds its name and line (<see cref="Limits.Exceeded"/>).</summary>
internal sealed class LimitError(string what, string variable, long limit) : JinjaError($"{what} exceeds the limit of {Budget.N(limit)} (raise it with {variable}=…)")
{
    public string What { get; } = what;

    public string Variable { get; } = variable;

    public long Limit { get; } = limit;
}
