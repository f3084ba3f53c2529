using System.Runtime.CompilerServices;

namespace Irr.Tensors;

/// <summary>
/// A fixed team of worker threads for the numeric kernels, in the style of an OpenMP parallel
/// region: <see cref="Run"/> executes one body on <c>T</c> threads at once (the caller is thread 0)
/// and returns when all are done. The threads are dedicated and stay alive between calls, so a
/// kernel pays a wake-up (microseconds) rather than thread-pool scheduling for each product.
/// </summary>
/// <remarks>
/// One team serves the whole process. If it is already busy (a kernel called from inside a team
/// body, or from two user threads at once), <see cref="Run"/> falls back to running the body on
/// the calling thread alone with <c>threads = 1</c>; results do not depend on the thread count.
/// </remarks>
internal sealed class ThreadTeam
{
    private static ThreadTeam? shared;
    private static readonly Lock CreateLock = new();

    /// <summary>Threads the kernels use: <c>IRR_NUM_THREADS</c> if set, else the processor count.</summary>
    public static int DefaultThreads { get; } = ReadThreadSetting();

    private readonly int size;
    private readonly Thread[] workers;
    private readonly SemaphoreSlim[] start;
    private readonly Lock busy = new();
    private Action<int, int>? body;
    private Action<string>? listener; // the caller's warning listener, adopted by the workers for the body
    private int activeThreads;
    private int pending;
    private Exception? failure;
    private readonly ManualResetEventSlim done = new(false, spinCount: 2000);

    private ThreadTeam(int size)
    {
        this.size = size;
        workers = new Thread[size - 1];
        start = new SemaphoreSlim[size - 1];
        for (int i = 0; i < workers.Length; i++)
        {
            int id = i + 1;
            start[i] = new SemaphoreSlim(0);
            workers[i] = new Thread(() => WorkerLoop(id)) { IsBackground = true, Name = $"irr-team-{id}" };
            // Not the first caller's execution context: each body runs with its own caller's warning listener (Run).
            using (ExecutionContext.SuppressFlow()) workers[i].Start();
        }
    }

    /// <summary>The process-wide team, created on first use with <see cref="DefaultThreads"/> threads.</summary>
    public static ThreadTeam Shared
    {
        get
        {
            if (shared is { } s) return s;
            lock (CreateLock) return shared ??= new ThreadTeam(DefaultThreads);
        }
    }

    /// <summary>Most threads a body can get.</summary>
    public int Size => size;

    [ThreadStatic] private static bool insideTeam;

    /// <summary>
    /// Runs <paramref name="work"/>(threadId, threadCount) on <c>min(threads, Size)</c> threads and
    /// waits for all of them. Exceptions from any member are rethrown on the caller, after every member has finished.
    /// A requested stop (<see cref="Interruption"/>) ends here, before the work starts: every kernel is a step at which
    /// an interrupted command stops.
    /// </summary>
    /// <exception cref="OperationCanceledException">A stop was requested.</exception>
    public void Run(int threads, Action<int, int> work)
    {
        Interruption.ThrowIfRequested();
        threads = Math.Clamp(threads, 1, size);
        if (threads == 1 || insideTeam || !busy.TryEnter())
        {
            work(0, 1);
            return;
        }
        try
        {
            body = work;
            listener = Diagnostics.Current;
            activeThreads = threads;
            failure = null;
            pending = threads - 1;
            done.Reset();
            for (int i = 0; i < threads - 1; i++) start[i].Release();
            insideTeam = true;
            try { work(0, threads); }
            catch (Exception e) { failure ??= e; }
            finally { insideTeam = false; }
            done.Wait();
            body = null;
            if (failure is { } f) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(f);
        }
        finally
        {
            busy.Exit();
        }
    }

    private void WorkerLoop(int id)
    {
        insideTeam = true;
        while (true)
        {
            start[id - 1].Wait();
            Diagnostics.Adopt(listener);
            try { body!(id, activeThreads); }
            catch (Exception e) { Interlocked.CompareExchange(ref failure, e, null); }
            if (Interlocked.Decrement(ref pending) == 0) done.Set();
        }
    }

    private static int ReadThreadSetting()
    {
        string? s = Environment.GetEnvironmentVariable("IRR_NUM_THREADS");
        if (s is not null && int.TryParse(s, out int n) && n >= 1) return Math.Min(n, 256);
        return Math.Max(1, Environment.ProcessorCount);
    }

    /// <summary>Splits <paramref name="count"/> items into <paramref name="parts"/> near-equal contiguous ranges.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (int Start, int End) Split(int count, int parts, int part)
    {
        long s = (long)count * part / parts, e = (long)count * (part + 1) / parts;
        return ((int)s, (int)e);
    }
}
