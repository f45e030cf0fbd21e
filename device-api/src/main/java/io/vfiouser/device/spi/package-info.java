/**
 * The service-provider interface of device plugins: a jar names its device types ({@link
 * io.vfiouser.device.spi.DevicePlugin}), each with a settings class and a factory, and the server launcher
 * discovers it with {@link java.util.ServiceLoader}.
 */
package io.vfiouser.device.spi;
