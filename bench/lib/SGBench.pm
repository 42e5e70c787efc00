package SGBench;

# What bench/run and bench/soak share: the request bodies they send, a
# raw HTTP/1.1 client, and starting and watching nginx.  Errors die with
# "$SGBench::who: ..." (the script's name).

use strict;
use warnings;

use Exporter qw(import);
use File::Basename qw(dirname);
use File::Path qw(make_path);
use IO::Socket::INET;
use JSON::PP;
use Time::HiRes qw(sleep);

use lib dirname(__FILE__) . '/../../t/lib';
use SGPort qw(free_port);

our @EXPORT_OK = qw(body_text large_body free_port write_file read_file
                    wait_port start_nginx stop_nginx children vm_kb http);

our $who = 'bench';

my $nginx = '/usr/sbin/nginx';


# ---- request bodies ------------------------------------------------------

my $json = JSON::PP->new->canonical;

my @events = qw(drop processed deferred group_unsubscribe bounce delivered
                click unsubscribe open group_resubscribe spamreport
                machine_opened);

# A create body of exactly $size bytes, its members in the order a client
# would write them, the label padded to the size; events, region and
# metadata (JSON text) may be given.
sub body_text {
    my ($size, %o) = @_;

    my $events = $o{events} // [qw(processed delivered open click bounce)];
    my $region = $o{region} // 'US';
    my $meta = $o{metadata};

    my $text = sub {
        my ($label) = @_;
        my $t = '{"destination":"Segment","label":' . $json->encode($label)
              . ',"filters":{"email_events":' . $json->encode($events) . '}'
              . ',"properties":{"write_key":"wk_3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e"'
              . ',"destination_region":"' . $region . '"}';
        $t .= ',"metadata":' . $meta if defined $meta;
        return $t . '}';
    };

    my $pad = $size - length $text->('');
    die "$who: a $size-byte body cannot hold its members\n" if $pad < 0;

    my $label = substr('bench integration ' . ('x' x $size), 0, $pad);
    my $t = $text->($label);
    die "$who: body is not $size bytes\n" unless length $t == $size;
    JSON::PP->new->decode($t);

    return $t;
}

# A large body: about half of it a long email_events list (every entry
# checked against the enum), a quarter unknown members in a nested object
# (each name checked for duplicates), the rest the label string.
sub large_body {
    my ($size, %o) = @_;

    my @ev;
    my $len = 0;
    while ($len < $size / 2) {
        my $e = $events[@ev % @events];
        push @ev, $e;
        $len += length($e) + 3;
    }

    my @members;
    $len = 0;
    while ($len < $size / 4) {
        my $i = @members;
        my $m = $i % 2 ? sprintf('"n%05d":%d', $i, 1000 + $i * 7)
                       : sprintf('"s%05d":"value-%05d"', $i, $i);
        push @members, $m;
        $len += length($m) + 1;
    }

    return body_text($size, %o, events => \@ev,
                     metadata => '{' . join(',', @members) . '}');
}


# ---- files, ports, processes ---------------------------------------------

sub write_file {
    my ($path, $content) = @_;
    make_path(dirname($path));
    open my $fh, '>', $path or die "$who: $path: $!\n";
    binmode $fh;
    print $fh $content;
    close $fh or die "$who: $path: $!\n";
    return $path;
}

sub read_file {
    my ($path) = @_;
    open my $fh, '<', $path or return '';
    binmode $fh;
    local $/;
    my $text = <$fh>;
    close $fh;
    return $text // '';
}

# whether something listens on the port within $seconds (5)
sub wait_port {
    my ($port, $seconds) = @_;
    for (1 .. 20 * ($seconds // 5)) {
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port");
        if ($s) { close $s; return 1; }
        sleep 0.05;
    }
    return 0;
}

sub children {
    my ($ppid) = @_;
    my @kids;
    opendir my $d, '/proc' or return ();
    for my $pid (grep { /^\d+$/ } readdir $d) {
        my $stat = read_file("/proc/$pid/stat");
        # pid (comm) state ppid ...
        push @kids, $pid if $stat =~ /\)\s+\S+\s+(\d+)/ && $1 == $ppid;
    }
    closedir $d;
    return sort { $a <=> $b } @kids;
}

# Starts Debian's nginx, daemonized, on a prefix (its configuration
# written there), under the command @wrap if any; returns (master pid,
# worker pid) once it listens on $port.
sub start_nginx {
    my ($prefix, $conf, $port, @wrap) = @_;
    make_path("$prefix/logs", "$prefix/tmp");
    write_file("$prefix/nginx.conf", $conf);

    my $out = "$prefix/logs/start.log";
    system(join(' ', map { "'$_'" } @wrap, $nginx, '-p', "$prefix/",
                                    '-c', "$prefix/nginx.conf")
           . " >'$out' 2>&1") == 0
        or die "$who: nginx in $prefix did not start:\n" . read_file($out);

    my $master;
    for (1 .. 50) {
        $master = read_file("$prefix/logs/nginx.pid");
        last if $master =~ /^\d+/;
        sleep 0.05;
    }
    ($master) = $master =~ /^(\d+)/ or die "$who: nginx in $prefix: no pid\n";

    wait_port($port) or die "$who: nginx in $prefix is not listening\n";

    my $worker;
    for (1 .. 50) {
        ($worker) = children($master);
        last if $worker;
        sleep 0.05;
    }
    $worker or die "$who: nginx in $prefix has no worker\n";

    return ($master, $worker);
}

# Stops an nginx and its workers: TERM, then what is left after 5 s is
# killed.
sub stop_nginx {
    my (@masters) = @_;
    my @workers = map { children($_) } @masters;

    kill 'TERM', @masters;
    for my $pid (@masters) {
        for (1 .. 50) {
            last unless kill 0, $pid;
            sleep 0.1;
        }
    }
    for my $pid (@masters, @workers) {
        kill 'KILL', $pid
            if read_file("/proc/$pid/cmdline") =~ /^nginx: .*process/;
    }
}

# a field of /proc/PID/status in KB (VmRSS, VmHWM)
sub vm_kb {
    my ($pid, $field) = @_;
    my ($kb) = read_file("/proc/$pid/status") =~ /^$field:\s+(\d+) kB/m
        or die "$who: no $field for process $pid\n";
    return $kb;
}


# ---- a raw HTTP/1.1 client -----------------------------------------------

# One request on its own connection; a body is sent as application/json
# unless a Content-Type is among the headers.  Returns (status, body, head).
sub http {
    my ($port, $method, $path, $body, @headers) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 5)
        or die "$who: connect $port: $!\n";
    my $req = "$method $path HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n";
    $req .= "$_\r\n" for @headers;
    if (defined $body) {
        $req .= "Content-Type: application/json\r\n"
            unless grep { /^content-type:/i } @headers;
        $req .= "Content-Length: " . length($body) . "\r\n";
    }
    $req .= "\r\n" . ($body // '');
    print $s $req;
    local $/;
    my $resp = <$s> // '';
    close $s;
    my ($head, $rbody) = split /\r\n\r\n/, $resp, 2;
    my ($status) = ($head // '') =~ m{^HTTP/1\.1 (\d+)}
        or die "$who: no HTTP answer from port $port\n";
    return ($status, $rbody // '', $head);
}

1;
